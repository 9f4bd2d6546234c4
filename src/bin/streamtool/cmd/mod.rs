//! One module per subcommand.

pub mod completions;
pub mod connect;
pub mod gen_cert;
pub mod pipe;
pub mod serve;
