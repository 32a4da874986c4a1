/**
 * The import rules CI checks (npm run lint:deps; dependency-cruiser): no import circles anywhere in lib/, and
 * lib/native.ts — the addon loader and the engine's wire types — depends on nothing else in lib/ but the
 * error contract (lib/errors.ts), so the schema and facade modules never pull the addon in through it.
 */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import circle: module initialisation order then decides what is defined when.',
      from: { path: '^lib/' },
      to: { circular: true },
    },
    {
      name: 'native-is-a-leaf',
      severity: 'error',
      comment: 'lib/native.ts (addon loader and wire types) imports only node: modules and lib/errors.ts.',
      from: { path: '^lib/native\\.ts$' },
      to: { path: '^lib/', pathNot: '^lib/(native|errors)\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
