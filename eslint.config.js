// Type-aware lint at zero warnings (`npm run lint`), as clickhouse-js does: floating promises are bugs in a stream processor.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['node_modules/**', '.cache/**', 'data/**', 'bench/results/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
    },
  },
  {
    // the version check runs before any TypeScript, on old Node.js too: plain ES2020 JavaScript
    files: ['bin/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ecmaVersion: 2020, sourceType: 'module', parserOptions: { projectService: false }, globals: { process: 'readonly' } },
    rules: { ...tseslint.configs.disableTypeChecked.rules, 'no-var': 'off', 'prefer-rest-params': 'off' },
  },
  {
    files: ['bin/**', 'bench/**', 'eval/**', 'test/**', 'infra/**', 'schemas/generate.ts'],
    rules: { 'no-console': 'off' },
  },
)
