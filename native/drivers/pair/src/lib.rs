//! The pair driver (being written).
