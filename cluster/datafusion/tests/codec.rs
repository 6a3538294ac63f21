//! The pass function on the wire: a plan with it, encoded and decoded
//! through DataFusion's protobuf with the hessforge codecs (logical and
//! physical), computes the same bits as the plan it came from — for a
//! built-in model (by name) and a model file (its loop IR or its
//! straight-line programs, compiled by the receiver); and a damaged or
//! hostile payload is an error, never a panic.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{AggregateUDF, col};
use datafusion::physical_plan::collect;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use datafusion_proto::logical_plan::{DefaultLogicalExtensionCodec, LogicalExtensionCodec};
use datafusion_proto::physical_plan::{DefaultPhysicalExtensionCodec, PhysicalExtensionCodec};
use hessforge_datafusion::codec::{decode, encode};
use hessforge_datafusion::{NAME, PassFunction, PassKind, PassLogicalCodec, PassPhysicalCodec};
use hessforge_driver::backend::BackendChoice;
use hessforge_driver::{Backend, Prepared, Problem, prepare};
use std::path::Path;
use std::sync::Arc;

/// `logistic_regression` as a model file (not the built-in): its backend
/// is the run-time compiled loop IR.
fn model_file() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../derivations/logistic_regression.toml")
        .to_string_lossy()
        .into_owned()
}

fn prepared(model: &str, data: Option<&Path>) -> Prepared {
    let problem = Problem {
        data: data.map(Path::to_path_buf),
        synthetic: data.is_none().then_some(2_000),
        seed: 3,
        ..Problem::default()
    };
    prepare(model, &problem).unwrap()
}

fn function(prepared: &Prepared, kind: PassKind) -> PassFunction {
    let p = prepared.backend.kernel().n_params();
    let theta: Vec<f64> = (0..p).map(|i| 0.1 * (i as f64).sin()).collect();
    let v: Vec<f64> = (0..p).map(|i| (i as f64 * 0.7).cos()).collect();
    PassFunction::new(
        prepared.backend.clone(),
        &prepared.constants,
        &theta,
        kind,
        (kind == PassKind::HessVec).then_some(&v[..]),
    )
    .unwrap()
}

#[test]
fn a_payload_decodes_into_the_function_it_came_from() {
    for model in ["logistic_regression".to_string(), model_file()] {
        let prepared = prepared(&model, None);
        for kind in [
            PassKind::Loss,
            PassKind::Gradient,
            PassKind::Hessian,
            PassKind::HessVec,
        ] {
            let f = function(&prepared, kind)
                .with_scaling(vec![(0.5, 2.0); 11])
                .unwrap();
            let back = decode(&encode(&f).unwrap()).unwrap();
            assert_eq!(back, f, "{model} {kind:?}");
            assert_eq!(back.backend().kind(), prepared.backend.kind(), "{model}");
        }
    }
    // The file's model travelled as IR and was compiled by the receiver.
    let file = prepared(&model_file(), None);
    assert!(matches!(file.backend, Backend::RunTimeCompiled(_)));
}

/// A model file whose parameters are all scalars travels as its
/// straight-line programs, compiled by the receiver: the same function,
/// and the same bits of a pass on both sides.
#[test]
fn a_scalar_model_file_travels_as_its_straight_line_programs() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../derivations/simple_linear_regression.toml")
        .to_string_lossy()
        .into_owned();
    let prepared = prepared(&file, None);
    assert!(matches!(
        prepared.backend,
        Backend::RunTimeCompiledStraightLine(_)
    ));
    let data = prepared.data.values().unwrap();
    let constants = &prepared.constants;
    for kind in [PassKind::Loss, PassKind::Gradient, PassKind::Hessian] {
        let f = function(&prepared, kind);
        let back = decode(&encode(&f).unwrap()).unwrap();
        assert_eq!(back, f, "{kind:?}");
        assert!(matches!(
            back.backend(),
            Backend::RunTimeCompiledStraightLine(_)
        ));
        let (k, k_back) = (f.backend().kernel(), back.backend().kernel());
        let at = hessforge_kernels::At::new(f.theta(), constants, data);
        let (mut g, mut g_back) = (vec![0.0; 2], vec![0.0; 2]);
        let loss = k.loss_grad(at, &mut g);
        assert_eq!(loss.to_bits(), k_back.loss_grad(at, &mut g_back).to_bits());
        assert_eq!(g, g_back);
    }
}

fn bits(value: &ScalarValue) -> Vec<u64> {
    let ScalarValue::Struct(s) = value else {
        panic!("not a struct: {value:?}")
    };
    let mut out = vec![];
    for c in s.columns() {
        let array = match c.data_type() {
            datafusion::arrow::datatypes::DataType::List(_) => {
                use datafusion::arrow::array::AsArray;
                c.as_list::<i32>().value(0)
            }
            _ => Arc::clone(c),
        };
        use datafusion::arrow::array::AsArray;
        let values = array.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        out.extend(values.values().iter().map(|v| v.to_bits()));
    }
    out
}

#[test]
fn a_plan_through_protobuf_computes_the_same_bits_for_a_builtin_and_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.parquet");
    let model = hessforge_driver::models::load("logistic_regression").unwrap();
    hessforge_driver::data::write_sample(&model, 30_000, 5, &path, None).unwrap();
    let logical_codec = PassLogicalCodec::new(Arc::new(DefaultLogicalExtensionCodec {}));
    let physical_codec = PassPhysicalCodec::new(Arc::new(DefaultPhysicalExtensionCodec {}));
    let rt = tokio::runtime::Runtime::new().unwrap();
    for name in ["logistic_regression".to_string(), model_file()] {
        let prepared = prepared(&name, Some(&path));
        let f = function(&prepared, PassKind::Hessian);
        let columns: Vec<_> = prepared.model.data.iter().map(|d| col(&d.id)).collect();
        rt.block_on(async {
            let ctx =
                SessionContext::new_with_config(SessionConfig::new().with_target_partitions(3));
            ctx.register_parquet("t", path.to_str().unwrap(), ParquetReadOptions::default())
                .await
                .unwrap();
            let udaf = AggregateUDF::from(f.clone());
            let df = ctx
                .table("t")
                .await
                .unwrap()
                .aggregate(vec![], vec![udaf.call(columns)])
                .unwrap();
            let value = |batches: Vec<datafusion::arrow::array::RecordBatch>| {
                ScalarValue::try_from_array(batches[0].column(0), 0).unwrap()
            };
            let direct = value(df.clone().collect().await.unwrap());
            // The logical plan, as a client sends it to a scheduler.
            let plan = df.logical_plan().clone();
            let bytes = logical_plan_to_bytes_with_extension_codec(&plan, &logical_codec).unwrap();
            let back = logical_plan_from_bytes_with_extension_codec(
                &bytes,
                &ctx.task_ctx(),
                &logical_codec,
            )
            .unwrap();
            let via_logical = value(
                ctx.execute_logical_plan(back)
                    .await
                    .unwrap()
                    .collect()
                    .await
                    .unwrap(),
            );
            // The physical plan, as a scheduler sends it to executors.
            let physical = df.create_physical_plan().await.unwrap();
            let bytes =
                physical_plan_to_bytes_with_extension_codec(physical, &physical_codec).unwrap();
            let back = physical_plan_from_bytes_with_extension_codec(
                &bytes,
                &ctx.task_ctx(),
                &physical_codec,
            )
            .unwrap();
            let via_physical = value(collect(back, ctx.task_ctx()).await.unwrap());
            assert_eq!(bits(&via_logical), bits(&direct), "{name}: logical");
            assert_eq!(bits(&via_physical), bits(&direct), "{name}: physical");
            assert_eq!(f.result(&direct).unwrap().rows, 30_000.0);
        });
    }
}

/// The payload of the file model's Hessian pass as JSON, to damage.
fn payload() -> serde_json::Value {
    let prepared = prepared(&model_file(), None);
    serde_json::from_slice(&encode(&function(&prepared, PassKind::Hessian)).unwrap()).unwrap()
}

fn refused(payload: &serde_json::Value, says: &str) {
    let bytes = serde_json::to_vec(payload).unwrap();
    let physical = PassPhysicalCodec::new(Arc::new(DefaultPhysicalExtensionCodec {}));
    let logical = PassLogicalCodec::new(Arc::new(DefaultLogicalExtensionCodec {}));
    for e in [
        physical.try_decode_udaf(NAME, &bytes).err(),
        logical.try_decode_udaf(NAME, &bytes).err(),
    ] {
        let e = e.unwrap_or_else(|| panic!("accepted: {says}")).to_string();
        assert!(e.contains(says), "`{says}` not in {e}");
    }
}

#[test]
fn hostile_payloads_are_errors_naming_what_is_wrong() {
    let good = payload();
    let ir = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut p = good.clone();
        edit(&mut p["model"]["loop_ir"]);
        p
    };
    // A tensor pointing outside θ; a scratch of 2⁶⁰ entries; a loop nest
    // of 2⁶⁴ iterations; an index that would wrap; a tensor of 2⁸⁰ entries.
    refused(
        &ir(&|m| m["tensors"][0]["offset"] = 1_000_000.into()),
        "out of range",
    );
    refused(
        &ir(&|m| m["sample"]["scratch"] = (1u64 << 60).into()),
        "larger than",
    );
    let step_load = |m: &mut serde_json::Value| {
        let steps = m["sample"]["steps"].as_array_mut().unwrap();
        let step = steps
            .iter_mut()
            .find(|s| {
                s["inputs"]
                    .as_array()
                    .is_some_and(|i| i.iter().any(|l| l.get("entry").is_some()))
            })
            .expect("a step that loads an entry");
        step["loops"][0] = u64::MAX.into();
    };
    refused(&ir(&step_load), "run more than");
    // An index whose shift would wrap past the end of memory.
    let shift_load = |m: &mut serde_json::Value| {
        let steps = m["sample"]["steps"].as_array_mut().unwrap();
        let axis = steps
            .iter_mut()
            .flat_map(|s| s["inputs"].as_array_mut().unwrap().iter_mut())
            .filter_map(|l| l.get_mut("entry"))
            .flat_map(|e| e["index"].as_array_mut().unwrap().iter_mut())
            .find_map(|a| a.get_mut("loop"))
            .expect("an entry indexed by a loop");
        axis["shift"] = u64::MAX.into();
    };
    refused(&ir(&shift_load), "out of range");
    refused(
        &ir(&|m| m["tensors"][0]["shape"] = serde_json::json!([1u64 << 40, 1u64 << 40])),
        "larger than",
    );
    // Another model, another format, lengths that do not fit.
    let mut p = good.clone();
    p["model"] = serde_json::json!({ "builtin": "no_such_model" });
    refused(&p, "no built-in model is named `no_such_model`");
    let mut p = good.clone();
    p["format"] = 99.into();
    refused(&p, "format 99");
    let mut p = good.clone();
    p["theta"].as_array_mut().unwrap().pop();
    refused(&p, "parameters given");
    let mut p = good.clone();
    p["scaling"].as_array_mut().unwrap().pop();
    refused(&p, "scalings");
}

#[test]
fn damaged_bytes_never_panic() {
    let bytes = serde_json::to_vec(&payload()).unwrap();
    let physical = PassPhysicalCodec::new(Arc::new(DefaultPhysicalExtensionCodec {}));
    // Every prefix (a payload cut short) and a seeded run of flipped bytes.
    for cut in (0..bytes.len()).step_by(97) {
        assert!(physical.try_decode_udaf(NAME, &bytes[..cut]).is_err());
    }
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut errors = 0;
    for _ in 0..300 {
        let mut damaged = bytes.clone();
        for _ in 0..3 {
            let at = (next() % damaged.len() as u64) as usize;
            damaged[at] = (next() % 256) as u8;
        }
        // An error, or a function that validated: never a panic.
        if physical.try_decode_udaf(NAME, &damaged).is_err() {
            errors += 1;
        }
    }
    assert!(
        errors > 150,
        "only {errors} of 300 damaged payloads refused"
    );
    assert!(encode_refuses_the_interpreter());
}

/// A model that runs on the interpreter (`--backend interpreter`, the
/// oracle) cannot be shipped, and says so.
fn encode_refuses_the_interpreter() -> bool {
    let prepared = prepare(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../derivations/simple_linear_regression.toml")
            .to_string_lossy(),
        &Problem {
            backend: BackendChoice::Interpreter,
            ..Problem::default()
        },
    )
    .unwrap();
    assert_eq!(prepared.backend.kind(), "interpreter");
    let f = PassFunction::new(
        prepared.backend.clone(),
        &prepared.constants,
        &[0.0, 0.0],
        PassKind::Loss,
        None,
    )
    .unwrap();
    encode(&f)
        .unwrap_err()
        .to_string()
        .contains("runs on the interpreter")
}
