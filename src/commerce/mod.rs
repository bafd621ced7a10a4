//! Commerce platforms fast-seller bridges to: where the catalog comes from and where orders
//! go. Each platform is an adapter in its own module; the seam they share (catalog snapshot,
//! live stock, order placement, customer lookup, changes back) grows out of the first one.

pub mod vendure;
