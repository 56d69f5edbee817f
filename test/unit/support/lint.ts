// ESLint against the project's real config, for tests that lint deliberate violations held in
// memory (the layer rules, the size rule): a rule that stopped matching fails its test instead of
// silently letting the violation in.
import path from 'node:path';
import { ESLint } from 'eslint';

export const root = path.resolve(import.meta.dirname, '../../..');

// Type information is not needed for these rules and loading the project would cost seconds per
// file; the one type-aware rule in the config is switched off for these in-memory texts.
export const eslint = new ESLint({
  cwd: root,
  overrideConfigFile: path.join(root, 'eslint.config.js'),
  overrideConfig: {
    languageOptions: { parserOptions: { projectService: false } },
    rules: { '@typescript-eslint/no-floating-promises': 'off' },
  },
});

/** The messages ESLint gives `code` as if it were the file `file` (relative to the repo root). */
export async function lintMessages(file: string, code: string): Promise<ESLint.LintResult['messages']> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  if (!result) throw new Error(`no lint result for ${file}`);
  return result.messages;
}
