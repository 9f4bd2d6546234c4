//! A pcapng writer: each connection as a synthetic TCP conversation, and TLS secrets in a
//! Decryption Secrets Block.
