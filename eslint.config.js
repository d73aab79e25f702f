import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Type-aware, and on purpose only about promises: one nobody handles is a crash in production
// (an unhandled rejection ends the process), so it is a finding here instead.
export default defineConfig(
  { ignores: ['dist/', 'data/', 'logs/', 'test/artifacts/'] },
  {
    files: ['server/**/*.ts', 'pipeline-runner/**/*.ts', 'cli/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts', 'gui/src/**/*.{ts,tsx}'],
    languageOptions: {
      parser: tseslint.parser,
      // Each file with its nearest tsconfig.json: the root one, or gui/tsconfig.json for the GUI.
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: false }],
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
);
