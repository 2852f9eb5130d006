//! A few of the strict crate's functions, called: a miss runs the body, a
//! hit doesn't, and the siblings do what they say, on the in-process cache.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use strict::{Failed, Prices, RUNS};

fn runs() -> u64 {
    RUNS.load(Ordering::Relaxed)
}

// One test, so that the body-run counter is read by one thread.
#[tokio::test]
async fn cached_functions_run_their_body_once_per_key() {
    assert_eq!(strict::one_expression(1).await, 2);
    assert_eq!(strict::one_expression_sync(4), 8);
    assert_eq!(strict::borrowed("ab".into(), &[1, 2, 3], Some("c")), 6);
    assert_eq!(strict::patterns((1, 2), 3), 8);
    assert_eq!(strict::nested_item(5), 5);
    assert_eq!(strict::generic::<_, 2>(7u16), vec![2, 2]);

    let before = runs();
    assert_eq!(strict::parse(" 42 ".into()).await, Ok(42));
    assert_eq!(strict::parse(" 42 ".into()).await, Ok(42));
    assert_eq!(runs() - before, 1, "the second call is a hit");
    assert_eq!(strict::parse_uncached(" 42 ".into()).await, Ok(42));
    assert_eq!(runs() - before, 2, "f_uncached runs the body");
    assert_eq!(strict::parse_refresh(" 42 ".into()).await, Ok(42));
    assert_eq!(runs() - before, 3, "f_refresh runs the body");
    assert!(
        strict::parse_invalidate(" 42 ".into())
            .await
            .expect("mem:// answers")
    );
    assert_eq!(strict::parse(" 42 ".into()).await, Ok(42));
    assert_eq!(runs() - before, 4, "invalidated: a miss");

    let before = runs();
    assert!(
        matches!(strict::parse_sync("x"), Err(Failed(_))),
        "`?` converts the error"
    );
    assert!(strict::parse_sync("x").is_err());
    assert_eq!(runs() - before, 2, "an `Err` is not stored");

    let prices = Prices { rate: 3 };
    let before = runs();
    assert_eq!(prices.quote("5").await, Ok(15));
    assert_eq!(prices.quote("5").await, Ok(15));
    assert_eq!(runs() - before, 1, "a method's second call is a hit");
    assert_eq!(prices.quote_uncached("5").await, Ok(15));
    assert_eq!(prices.quote_refresh("5").await, Ok(15));
    assert_eq!(runs() - before, 3, "a method's siblings run its body");
    assert_eq!(prices.price(2), 6);
    assert_eq!(Arc::new(Prices { rate: 1 }).shared(2), 3);
    assert_eq!(Prices::standard(4), Some(4));
    assert_eq!(Prices::doubled(4).await, 8);
    assert_eq!(Prices::doubled_uncached(5).await, 10);
    assert_eq!(prices.from_field(1), 4);
}
