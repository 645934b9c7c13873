#!/usr/bin/env node
// The published command runs the built code; in this repository `pnpm herald` runs the sources through tsx.
import '../dist/main.js';
