/**
 * The Python that serves as the independent oracle: Debian's python3 with python3-torch (not a pyenv python
 * first on PATH), or TORCH_SSL_PYTHON — the same choice scripts/fixtures.mjs makes.
 */
import { existsSync } from 'node:fs';

export const PYTHON = process.env.TORCH_SSL_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
