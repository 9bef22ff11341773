//! `registry`: search, show, add, outdated and update against a stand-in registry.
