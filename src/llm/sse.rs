//! (to be written) Server-sent events read from a response body, shared by the providers.
