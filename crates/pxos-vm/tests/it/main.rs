//! PXVM: seed kernels, the conformance suite, round trips, differential and hostile tests.

mod asm_errors;
mod differential;
mod hostile;
mod isa_doc;
mod llm;
mod round_trip;
mod seed;
mod session;
mod spec;
mod support;
