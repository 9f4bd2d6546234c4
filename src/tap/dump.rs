//! Text and hex dumps of a connection's chunks, TLS record annotation, and the
//! JSON-lines transcript format with its reader (for `replay:`).
