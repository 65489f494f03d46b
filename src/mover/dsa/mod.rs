//! DSA engine: descriptors, completion records, discovery, portals, submission.
