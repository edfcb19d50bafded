//! vpnmon
