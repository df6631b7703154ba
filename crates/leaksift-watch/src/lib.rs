//! Memory sampling of a process, a process tree or a cgroup v2, and the `check` scenario runner.
