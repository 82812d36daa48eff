//! The committed pixellm.
