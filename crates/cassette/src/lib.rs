//! Cassettes: a run's recorded interactions in a versioned, append-only
//! file format that can be replayed, diffed and exported.

#![forbid(unsafe_code)]
