//! mailfuse state. (Being written.)
