// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Names that hold errors in this code base (catch clauses, callbacks). */
const ERROR_NAMES = "/^(e|err|error|ex|cause|failure|reason)$/i";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "**/*.js", "!eslint.config.js"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unsafe-assignment": "error",
      "@typescript-eslint/no-unsafe-return": "error",
      "@typescript-eslint/no-unsafe-argument": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  {
    // src-shared is imported by every part; it must import none of them (also enforced by tsconfig.src-shared.json).
    files: ["src-shared/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: ["**/kubelet/**", "**/proxy/**", "**/cni/**", "**/cadvisor/**", "**/test/**"] }],
    },
  },
  {
    // Errors are classified by their typed `code`, never by their text (src-shared/errors.ts): no regex test,
    // string search or comparison on an error's `.message` or on `errorMessage(...)`. Tests may look at text.
    files: ["**/*.ts"],
    ignores: ["test/**"],
    rules: {
      "no-restricted-syntax": [
        "error",
        // An error's text: `err.message` (or `(err as Error).message`, `x.cause.message`) and `errorMessage(err)`.
        // A status's `message` field (conditions, pod status) is not an error's and stays comparable.
        ...[
          `MemberExpression[property.name='message'][object.name=${ERROR_NAMES}]`,
          `MemberExpression[property.name='message'][object.expression.name=${ERROR_NAMES}]`,
          `MemberExpression[property.name='message'][object.property.name=/^(cause|error|err)$/]`,
          "CallExpression[callee.name='errorMessage']",
        ].flatMap((text) => [
          {
            selector: `CallExpression[callee.property.name=/^(test|exec)$/] > ${text}.arguments`,
            message: "Do not classify errors by message text: branch on a typed error's `code` (src-shared/errors.ts).",
          },
          {
            selector: `CallExpression[callee.property.name=/^(startsWith|endsWith|includes|indexOf|match|matchAll|search|replace|replaceAll)$/] > MemberExpression.callee > ${text}.object`,
            message: "Do not parse or rewrite error message text: use the typed error's fields (e.g. CriError.runtimeMessage, `code`).",
          },
          {
            selector: `BinaryExpression[operator=/^[!=]==?$/] > ${text}`,
            message: "Do not compare error message text: branch on a typed error's `code` (src-shared/errors.ts).",
          },
        ]),
      ],
    },
  },
  { files: ["eslint.config.js"], ...tseslint.configs.disableTypeChecked },
);
