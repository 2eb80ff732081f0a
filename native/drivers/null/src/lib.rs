//! The null driver (being written).
