//! Protocol layer (being written).
