//! The tap driver (being written).
