/** The main evaluation job (bank-only scoring) and its building blocks. @module */
export * from "./bank_only.ts";
export * from "./run.ts";
