fn main() {
    for name in std::env::args().skip(1) {
        let m = hessforge_spec::load_file(std::path::Path::new(&name)).unwrap();
        let d = hessforge_symbolic::derive(&m).unwrap();
        let b = d.backprop.expect("backprop");
        for s in &b.signals {
            println!(
                "δ({}) {:?} users {:?}: {}  =  {}",
                s.quantity, s.indices, s.users, s.local, s.value
            );
        }
        for i in &b.inputs {
            println!(
                "∂ℓ/∂{} {:?} users {:?}: {}",
                i.tensor, i.indices, i.users, i.local
            );
        }
        if let Some(u) = &b.bottleneck {
            println!(
                "bottleneck {} affine={} first {} second {}",
                u.quantity,
                u.is_affine(),
                u.first,
                u.second
            );
            for c in &u.curvature {
                println!("  curv {} {} : {}", c.row, c.col, c.loss);
            }
        }
    }
}
