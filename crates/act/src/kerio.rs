//! Kerio Connect Administration API. (Being written.)
