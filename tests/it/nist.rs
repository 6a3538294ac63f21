//! The NIST StRD nonlinear-regression problems (`tests/nist/`: NIST's
//! `.dat` files and the derivation files `tests/nist/nist.py` writes from
//! them), from both of NIST's starts: for every Newton-type and quasi-Newton
//! method, whether it reaches NIST's certified parameters to 6 significant
//! digits (every parameter's log relative error −log₁₀(|b − c|/|c|) ≥ 6,
//! the usual criterion) and after how many iterations it stopped: one
//! `hessforge compare … --json` process per problem and start (a process of
//! its own derives the model first: within one process the order of a
//! derivation's terms, and so the last bits of its programs, can depend on
//! what was derived before). Each run is asked for ‖∇L‖∞ ≤ 10⁻¹³ (L = RSS/N
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
Bennett5  1 -10000   1030    599    868     13    852    895
Bennett5  2 -10000   1557    946   1460     10   1411   1421
BoxBOD    1    361     22     26 -10000     19     18     19
BoxBOD    2      8     17     21     19     20     18     -8
Chwirut1  1     11     18     25     17     11     21     42
Chwirut1  2      8      7     13     16     13     18     33
Chwirut2  1      8     19     30     17      9     35     42
Chwirut2  2      6      7     11     17     10     17     34
DanWood   1     15     15     15     11      8     17     23
DanWood   2      5      6      5      6      6     10     11
Eckerle4  1  -1803     32     -5 -10000 -10000    -69     48
Eckerle4  2      6      7     18      6      9     26     14
ENSO      1     17     13      9     14     53     26     35
ENSO      2     32     10     15      9     46     22     30
Gauss1    1      6      6      8     26     10     29    735
Gauss1    2      6      8      7     18     12     26   1618
Gauss2    1      7      7     14     20     10     36    464
Gauss2    2      7      7      8     18      9     38    772
Gauss3    1 -10000     10     21     30     11     35   1478
Gauss3    2 -10000     12     18     40      9     32   1737
Hahn1     1 -10000     92    135 -10000     14    362    927
Hahn1     2 -10000  10000    117   7534     14    331    501
Kirby2    1    141     29     38    -38     13     59    192
Kirby2    2     36     23     28     28     12     44    136
Lanczos1  1 -10000    227    199    -23     13    415    510
Lanczos1  2 -10000     87    186    225      7    353    397
Lanczos2  1 -10000    226    197    -23     13    421    523
Lanczos2  2 -10000     88    186    227      7    351    376
Lanczos3  1 -10000    232    190    -24     17    423    536
Lanczos3  2 -10000     76    178    238      8    365    415
MGH09     1 -10000     75    104 -10000  -5019    300    320
MGH09     2     10     10     10     12     40     38     35
MGH10     1 -10000   9508 -10000 -10000     -1    -64 -10000
MGH10     2 -10000    228    273   -264     13    320    381
MGH17     1 -10000    510    733 -10000    -32    182    231
MGH17     2     28     38     36     67      9     64    105
Misra1a   1    -21     35     35 -10000     16     44     76
Misra1a   2     11     11     24     14      8     25     62
Misra1b   1     -5     31     40 -10000     13     43     74
Misra1b   2     15     23     32    -16      8     28     67
Misra1c   1     17     15     45     28     10     56     57
Misra1c   2     10     11     38     21      6     29     -5
Misra1d   1 -10000  10000     22     20     13  10000  10000
Misra1d   2      7  10000     16     -8      5     27     -5
Nelson    1     80    123   1017    740     29    170 -10000
Nelson    2     30  10000    987     55     17    106    277
Rat42     1     -1     27     24     -1     24     21     47
Rat42     2      6     12     10     17      7     15     40
Rat43     1    -42     22     42    126 -10000     -5    -11
Rat43     2     13     15     23     17     20     31     57
Roszman1  1 -10000     21   -210     14      6     40     71
Roszman1  2      9     20   -178     11      5     40     85
Thurber   1 -10000     23     41    126     46     70    235
Thurber   2 -10000     22     50    765     41     94    183
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
