//! Opening a heap file of either format (V8 .heapsnapshot, Java HPROF), detected from its content.
