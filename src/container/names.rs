//! Generated container names, docker-like: `adjective_scientist`.

const ADJECTIVES: [&str; 24] = [
    "agile", "bold", "brave", "calm", "clever", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nifty", "quiet", "quick", "sharp", "sleepy", "stoic", "swift", "tender", "vivid", "wise", "zen",
];

const NAMES: [&str; 24] = [
    "babbage", "bohr", "curie", "darwin", "dijkstra", "einstein", "euler", "fermi", "gauss", "hopper", "hypatia",
    "kepler", "knuth", "lamarr", "lovelace", "meitner", "newton", "noether", "pasteur", "ritchie", "shannon",
    "thompson", "turing", "wozniak",
];

/// A random name; after `attempt` collisions a number is appended (docker does the same).
pub fn generate(attempt: u32) -> String {
    let r = u64::from_str_radix(&crate::sys::random_id(), 16).unwrap_or(0);
    let a = ADJECTIVES[(r % 24) as usize];
    let n = NAMES[((r / 24) % 24) as usize];
    if attempt == 0 {
        format!("{a}_{n}")
    } else {
        format!("{a}_{n}{}", (r >> 20) % 1000)
    }
}
