#!/usr/bin/env node
// The `kvbench` command. A committed shim (not dist/cli.js itself), so that package managers can
// link the bin before the package is built inside the workspace.
import '../dist/cli.js';
