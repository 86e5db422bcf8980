// The transfer initiator in Node.js, with pg (npm install in this directory).
//
//   PGHOST=... PGPORT=... PGDATABASE=coord PGUSER=... \
//   BANK1_URL=http://127.0.0.1:18201 BANK2_URL=http://127.0.0.1:18202 \
//       node transfer.js KEY
//
// Moves 10.00 from account 1 (bank1) to account 2 (bank2) with business key
// KEY-1, then tries the same to account 3, which bank2 does not have: its
// try is refused (SQLSTATE TC001), the local transaction rolls back with
// the transfers row, and the coordinator cancels bank1's branch.
'use strict';

const { Client } = require('pg');

const BANK1 = process.env.BANK1_URL;
const BANK2 = process.env.BANK2_URL;

// One global transaction; returns its gid once the decision commits.
async function transfer(client, key, fromAccount, toAccount, amount) {
  await client.query('BEGIN');
  try {
    const { rows: [{ gid }] } = await client.query(
      "SELECT tcc_begin(kind => 'transfer', business_key => $1) AS gid", [key]);
    for (const [bank, account] of [[BANK1, fromAccount], [BANK2, toAccount]]) {
      await client.query(
        'SELECT tcc_branch($1, $2, $3, $4, $5, name => $6)',
        [gid, `${bank}/try`, `${bank}/confirm`, `${bank}/cancel`,
          { account, amount }, `account ${account}`]);
    }
    // the initiator's own write, committed together with the decision
    await client.query(
      `INSERT INTO transfers (business_key, gid, from_account, to_account, amount)
       VALUES ($1, $2, $3, $4, $5)`,
      [key, gid, fromAccount, toAccount, amount]);
    await client.query('SELECT tcc_finish($1)', [gid]);
    await client.query('COMMIT');
    return gid;
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
}

async function main() {
  const key = process.argv[2];
  const client = new Client(); // connection from PGHOST, PGPORT, ...
  await client.connect();
  try {
    const gid = await transfer(client, `${key}-1`, 1, 2, '10.00');
    const { rows: [{ status }] } = await client.query(
      'SELECT tcc_wait($1) AS status', [gid]);
    console.log(`${key}-1: ${status}`);
    try {
      await transfer(client, `${key}-2`, 1, 3, '10.00');
      console.log(`${key}-2: not refused`);
    } catch (err) {
      if (err.code !== 'TC001') throw err;
      console.log(`${key}-2: refused (${err.code})`);
    }
  } finally {
    await client.end();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
