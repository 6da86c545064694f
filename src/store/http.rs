//! Store HTTP server (being written).
