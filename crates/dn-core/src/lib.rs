//! dn-core: the logic behind the dn tools.
