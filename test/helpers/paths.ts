import { resolve } from 'node:path';

/** The repository's root folder (test/helpers/ is two levels below it). */
export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
