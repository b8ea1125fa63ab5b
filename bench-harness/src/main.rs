//! `verdict-load`: the load generator for verdict (grows with issue 4).

fn main() {
    println!("verdict-load: the load harness arrives with the scenarios of issue 4");
}
