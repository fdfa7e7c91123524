/** Types of tools/postgres.mjs, for the benches that start a private PostgreSQL server. */
export declare function startPostgres(): Promise<{ url: string; stop: () => Promise<void> }>;
