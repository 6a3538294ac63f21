fn main() {
    let name = std::env::args().nth(1).unwrap();
    let m = hessforge_spec::load_file(std::path::Path::new(&format!("derivations/{name}.toml"))).unwrap();
    let d = hessforge_symbolic::derive(&m).unwrap();
    let t = std::time::Instant::now();
    let p = hessforge_symbolic::lower(&d).unwrap();
    eprintln!("lowered in {:?}", t.elapsed());
    println!("{}", p.loss.per_row);
    println!("{}", p.loss_grad_hess.theta_only);
    println!("ops: loss {} grad {} hess {}", p.loss.per_row.operation_count(), p.loss_grad.per_row.operation_count(), p.loss_grad_hess.per_row.operation_count());
}
