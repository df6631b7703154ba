//! The heap graph and its readers (V8 .heapsnapshot, Java HPROF): dominators, retained sizes, paths, suspects, diff.
