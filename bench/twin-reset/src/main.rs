//! `cargo run --release -p sandbar-bench-twin-reset`: how long it takes to
//! put a run's stateful twin back to its seed and make the first write, for
//! tables of 1k, 5k and 20k rows — Sandbar's copy-on-write twin beside two
//! straightforward designs measured in the same process: deep-copying the
//! rows, and restoring an in-memory SQLite table from a seed table.

#![allow(clippy::print_stdout)] // A benchmark prints its results.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use sandbar_engine::{Changes, Twin};

const ROUNDS: usize = 200;

fn scenario(rows: usize) -> sandbar_scenario::Scenario {
    let mut text = String::from("version: 1\nname: reset\ndata:\n  orders:\n");
    for i in 0..rows {
        text.push_str(&format!(
            "    - {{id: o{i}, customer: c{}, total: {}.50, status: delivered, item: \"item number {i}\"}}\n",
            i % 97,
            i % 500
        ));
    }
    text.push_str("tools:\n  - name: t\n    respond:\n      - text: ok\n");
    match sandbar_scenario::load_str(&text, "reset.yaml", None) {
        Ok(s) => s,
        Err(e) => panic!("bench scenario does not load: {e}"),
    }
}

fn percentile(mut samples: Vec<Duration>, p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p) as usize]
}

fn report(name: &str, rows: usize, samples: Vec<Duration>) {
    let p50 = percentile(samples.clone(), 0.5);
    let p99 = percentile(samples, 0.99);
    println!(
        "| {name:<34} | {rows:>6} | {:>9.1} | {:>9.1} |",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), sqlx::Error> {
    println!("| design | rows | p50 µs | p99 µs |");
    println!("|---|---:|---:|---:|");
    for rows in [1_000usize, 5_000, 20_000] {
        let s = scenario(rows);

        // Sandbar: a run's twin is a clone of the engine's seed twin (rows
        // and key index shared); the first update copies the row pointers
        // of the table it touches. Timed: the reset and that first write.
        let seed_twin = Twin::from_seed(&s.tables);
        let mut samples = Vec::with_capacity(ROUNDS);
        for i in 0..ROUNDS {
            let start = Instant::now();
            let mut twin = seed_twin.clone();
            let mut changes = Changes::default();
            let key = format!("o{}", i % rows);
            let updated = twin
                .update(
                    "orders",
                    &[("id".into(), json!(key))],
                    |_| Ok(vec![("status".into(), json!("refunded"))]),
                    &mut changes,
                )
                .map_err(sqlx::Error::Protocol)?;
            samples.push(start.elapsed());
            assert_eq!(updated, 1);
        }
        report("sandbar twin (copy-on-write)", rows, samples);

        // Deep copy: every row cloned on reset, as a twin that owns its rows would.
        let seed: Vec<serde_json::Map<String, Value>> = s.tables["orders"]
            .rows
            .iter()
            .map(|r| (**r).clone())
            .collect();
        let mut samples = Vec::with_capacity(ROUNDS);
        for i in 0..ROUNDS {
            let start = Instant::now();
            let mut copy = seed.clone();
            let key = json!(format!("o{}", i % rows));
            if let Some(row) = copy.iter_mut().find(|r| r.get("id") == Some(&key)) {
                row.insert("status".into(), json!("refunded"));
            }
            samples.push(start.elapsed());
            std::hint::black_box(&copy);
        }
        report("deep copy of the rows", rows, samples);

        // SQLite: restore a working table from a seed table in one transaction.
        let mut conn = SqliteConnectOptions::new()
            .in_memory(true)
            .connect()
            .await?;
        sqlx::query("CREATE TABLE seed (id TEXT PRIMARY KEY, customer TEXT, total REAL, status TEXT, item TEXT)")
            .execute(&mut conn)
            .await?;
        sqlx::query("CREATE TABLE orders (id TEXT PRIMARY KEY, customer TEXT, total REAL, status TEXT, item TEXT)")
            .execute(&mut conn)
            .await?;
        let mut tx = conn.begin().await?;
        for r in &seed {
            sqlx::query("INSERT INTO seed VALUES (?, ?, ?, ?, ?)")
                .bind(r["id"].as_str())
                .bind(r["customer"].as_str())
                .bind(r["total"].as_f64())
                .bind(r["status"].as_str())
                .bind(r["item"].as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let mut samples = Vec::with_capacity(ROUNDS);
        for i in 0..ROUNDS {
            let start = Instant::now();
            let mut tx = conn.begin().await?;
            sqlx::query("DELETE FROM orders").execute(&mut *tx).await?;
            sqlx::query("INSERT INTO orders SELECT * FROM seed")
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE orders SET status = 'refunded' WHERE id = ?")
                .bind(format!("o{}", i % rows))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            samples.push(start.elapsed());
        }
        report("SQLite in-memory restore", rows, samples);
    }
    Ok(())
}
