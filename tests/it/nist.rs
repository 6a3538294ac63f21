//! The NIST StRD nonlinear-regression problems (`tests/nist/`: NIST's
//! `.dat` files and the derivation files `tests/nist/nist.py` writes from
//! them), from both of NIST's starts: for every Newton-type and quasi-Newton
//! method, whether it reaches NIST's certified parameters to 6 significant
//! digits (every parameter's log relative error −log₁₀(|b − c|/|c|) ≥ 6,
//! the usual criterion) and after how many iterations it stopped: one
//! `hessforge compare … --json` process per problem and start, as a user
//! runs it. Each run is asked for ‖∇L‖∞ ≤ 10⁻¹³ (L = RSS/N
//! is as small as 10⁻²⁷ on Lanczos1, where the default 10⁻⁸ stops far from
//! the answer), so most runs end when L cannot decrease any further
//! (`failed`): what the table asserts is where they ended. A change of any entry is a change of an optimizer's
//! behaviour, to be reviewed like a snapshot; `docs/src/results/nist.md`
//! sets it beside SciPy's `least_squares` and `trust-exact`.

use crate::common::{expected_table, hessforge, symbolica_lock};
use std::path::{Path, PathBuf};

const METHODS: [&str; 7] = [
    "newton-damped",
    "newton-lm",
    "newton-exact-tr",
    "newton-cg",
    "gauss-newton",
    "bfgs",
    "lbfgs",
];

/// Problem, start, then per method of [`METHODS`] the iterations until it
/// stopped: `35` reached the certified values, `-35` did not.
const EXPECTED: &str = "
# problem start newton-damped newton-lm newton-exact-tr newton-cg gauss-newton bfgs lbfgs
Bennett5  1    258   1031    597    869     14    852   1008
Bennett5  2    756   1559    940   1461     12  10000    -28
BoxBOD    1     13     24     33 -10000     16     23     19
BoxBOD    2      8     18     29     20     15     24     -8
Chwirut1  1      9     19     30     24     14     28     33
Chwirut1  2      8      7     15     16     14     21     39
Chwirut2  1     10     18     27     17     11     34     71
Chwirut2  2      8      7     16     25     12     33     47
DanWood   1     13     15     13     13      8     17     23
DanWood   2      5      6      5      6      6     10     11
Eckerle4  1     -2     31    -24 -10000 -10000     72     48
Eckerle4  2      8      7      6      6     10     26     14
ENSO      1      7     15     10     14     63     26     34
ENSO      2     29     10     17      9     49     22     30
Gauss1    1      9      6     24     16      7     32    949
Gauss1    2      9      7     23     21      8     58    981
Gauss2    1     10     10     16     20     10     63   1516
Gauss2    2     11     11     16     23     13    112   1738
Gauss3    1     12     12     23     25      9    101   1530
Gauss3    2     10     11     30     31     11     50   1845
Hahn1     1    -39     77    139 -10000     24    446    565
Hahn1     2    -97     73    101  -8880     23    432    594
Kirby2    1     21     34     39     41     12    116    259
Kirby2    2      8     22     35     28     11     86    283
Lanczos1  1  -1230    226    208    -23     13    431    510
Lanczos1  2  -1713     87    169    227      9    350    374
Lanczos2  1  -1102    226    210    -23     14    426    495
Lanczos2  2  -1956     88    173    228      7    349    391
Lanczos3  1   -890    233    219    -23     16    431    549
Lanczos3  2  -2159     76    170   -243      8    368    408
MGH09     1     35     74     94   4850 -10000    306    270
MGH09     2     10     10     12     12     49     38     35
MGH10     1 -10000   9508 -10000 -10000     -1    -64     -7
MGH10     2    178    225    267   -279     11    315    397
MGH17     1   -923    507    704 -10000    -41    175    218
MGH17     2     36     38     37     68     10     64    105
Misra1a   1   1206     37     52 -10000     14     50     92
Misra1a   2     10     10     27     14      6     23     -4
Misra1b   1    938     26     45 -10000     13     48     68
Misra1b   2     19     23     42     21     12  10000     85
Misra1c   1     18     18     45     25     10     56     57
Misra1c   2      9     12     38     17      6     29     -5
Misra1d   1  10000  10000     38     22  10000     37     64
Misra1d   2  10000  10000     33     -8     38     49     -4
Nelson    1     67    121   -975    739     28    139 -10000
Nelson    2     26     43   -817     49      8     90    211
Rat42     1    145     28     31     -1     22  10000     74
Rat42     2      7     14     21     16      9     23     54
Rat43     1     26     23     43    119 -10000     -5    -11
Rat43     2     11     16     21     17     15     79    101
Roszman1  1     12     21   -199     14      6     41     80
Roszman1  2      8     20   -167     10      5     39     73
Thurber   1     59     36     41    125     43    404   2405
Thurber   2    -49     31     44    457     32    342    301
";

fn nist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nist")
}

/// NIST's two starts and the certified parameters, from the `.dat` file's
/// lines `b1 = start1 start2 certified sd`.
pub(crate) fn starts_and_certified(name: &str) -> ([Vec<String>; 2], Vec<f64>) {
    let text = std::fs::read_to_string(nist_dir().join("dat").join(format!("{name}.dat"))).unwrap();
    let mut starts = [Vec::new(), Vec::new()];
    let mut certified = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let [b, "=", s1, s2, c, _sd] = words.as_slice()
            && b.starts_with('b')
        {
            starts[0].push(s1.to_string());
            starts[1].push(s2.to_string());
            certified.push(c.parse().unwrap());
        }
    }
    (starts, certified)
}

/// The smallest log relative error of θ against the certified values: the
/// significant digits θ shares with them (6 or more: reached).
pub(crate) fn digits(theta: &[f64], certified: &[f64]) -> f64 {
    (theta.iter().zip(certified))
        .map(|(t, c)| {
            let rel = (t - c).abs() / c.abs();
            if rel.is_nan() {
                0.0
            } else {
                -rel.max(1e-17).log10()
            }
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn every_newton_type_and_quasi_newton_method_on_the_nist_problems_from_both_starts() {
    let mut names: Vec<String> = std::fs::read_dir(nist_dir().join("dat"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names.len(), 27, "NIST's 27 problems");
    let _g = symbolica_lock();
    let mut table = String::new();
    // Per start, per method of METHODS: how many problems it reached.
    let mut reached = [[0usize; METHODS.len()]; 2];
    for name in &names {
        let (starts, certified) = starts_and_certified(name);
        let lower = name.to_lowercase();
        let (file, data) = (
            nist_dir().join(format!("{lower}.toml")),
            nist_dir().join(format!("{lower}.csv")),
        );
        for (k, start) in starts.iter().enumerate() {
            let out = hessforge()
                .arg("compare")
                .arg(&file)
                .arg("--data")
                .arg(&data)
                .args([
                    "--optimizers",
                    &METHODS.join(","),
                    "--tol",
                    "1e-13",
                    "--json",
                ])
                .arg(format!("--init={}", start.join(",")))
                .output()
                .unwrap();
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{name}, start {}: {e}", k + 1));
            let mut row = format!("{name:<9} {}", k + 1);
            for (m, method) in METHODS.iter().enumerate() {
                let run = (doc["runs"].as_array().unwrap().iter())
                    .find(|r| r["optimizer"] == *method)
                    .unwrap_or_else(|| panic!("{name}: no run of {method}"));
                let theta: Vec<f64> = (run["theta"].as_array().unwrap().iter())
                    .map(|t| t.as_f64().unwrap_or(f64::NAN))
                    .collect();
                let iterations = run["iterations"].as_u64().unwrap();
                let cell = if digits(&theta, &certified) >= 6.0 {
                    reached[k][m] += 1;
                    iterations.to_string()
                } else {
                    format!("-{iterations}")
                };
                row.push_str(&format!(" {cell:>6}"));
            }
            table.push_str(&row);
            table.push('\n');
        }
    }
    let expected = expected_table(EXPECTED);
    assert_eq!(
        table, expected,
        "the table (problem, start, then {METHODS:?}) is now:\n{table}"
    );
    // The best method reaches every certified solution from both starts,
    // as SciPy's least_squares (trf) does.
    for (k, counts) in reached.iter().enumerate() {
        let best = counts.iter().max().unwrap();
        assert_eq!(*best, 27, "from start {}", k + 1);
    }
}
