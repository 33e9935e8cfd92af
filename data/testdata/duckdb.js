// Runs SQL statements in one in-memory DuckDB: the tests write their
// Parquet fixtures with it, a writer msrtrain did not write. The statements
// come as a JSON array on standard input; @duckdb/node-api is found through
// NODE_PATH (make setup installs it into third_party/duckdb).
const { DuckDBInstance } = require('@duckdb/node-api');

(async () => {
  const statements = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const db = await DuckDBInstance.create(':memory:', { threads: '1' });
  const con = await db.connect();
  for (const sql of statements) {
    try {
      await con.run(sql);
    } catch (e) {
      throw new Error(`${e.message}\nin: ${sql}`);
    }
  }
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
