//! SVG charts of memory over time: samples, baseline, fitted trend and projected limit crossing.
