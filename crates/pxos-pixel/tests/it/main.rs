//! Integration tests of the PXI codec: round trips, re-encoding by other
//! tools, damage, limits and random access.

mod damage;
mod random_access;
mod reencode;
mod round_trip;
mod support;
