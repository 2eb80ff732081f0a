//! The afpacket driver (being written).
