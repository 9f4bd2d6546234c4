//! Seeing the traffic: a tap on a connection's byte stream (what it received and what it
//! sent, in order, with a timestamp), and what the taps feed: text and hex dumps
//! ([`dump`]), JSON-lines transcripts and their replay, and pcapng files ([`pcapng`]).

pub mod dump;
pub mod pcapng;
