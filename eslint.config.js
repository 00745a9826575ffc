// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

// Each folder of src/ is a domain; other code reaches it only through its index.ts.
const domains = readdirSync(join(import.meta.dirname, 'src'), { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
const domainZones = [
  ...domains.map((domain) => ({
    target: `./src/${domain}`,
    from: './src',
    except: [`./${domain}`, ...domains.filter((other) => other !== domain).map((other) => `./${other}/index.ts`)],
    message: 'Import another domain through its index.ts.',
  })),
  { target: ['./test', './bench'], from: './src', except: domains.map((domain) => `./${domain}/index.ts`), message: 'Tests and benchmarks use a domain through its index.ts.' },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', 'src/localcloud/kernels/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import-x/no-cycle': 'error',
      'import-x/no-restricted-paths': ['error', { zones: domainZones }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
