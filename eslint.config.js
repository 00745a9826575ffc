// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Import cycles and domain boundaries are checked by dependency-cruiser (.dependency-cruiser.cjs).
export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'bench/results/**', 'src/localcloud/kernels/**', '.dependency-cruiser.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
