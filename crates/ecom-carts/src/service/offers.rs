//! What the catalog offers now, as carts read it: the one place that speaks to
//! ecom-catalog's variant interface and to ecom-orders' requested lines.

use std::collections::BTreeMap;

use diesel_async::AsyncPgConnection;
use ecom_catalog::CatalogError;
use ecom_core::Money;

/// A variant as a cart shows it (the shape of ecom-catalog's `VariantOnSale`).
#[derive(Debug, Clone)]
pub struct VariantOnSale {
    pub variant_id: i64,
    pub product_id: i64,
    pub product_name: String,
    pub sku: Option<String>,
    pub options: BTreeMap<String, String>,
    pub unit_price: Money,
    pub available: i32,
    pub on_sale: bool,
}

/// The variants among `ids` the catalog knows, read fresh. Until variants land in the
/// catalog, a product stands for its one variant (same id).
pub async fn variants_on_sale(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> Result<Vec<VariantOnSale>, CatalogError> {
    let mut found = Vec::with_capacity(ids.len());
    for &id in ids {
        match ecom_catalog::service::get_product(conn, id).await {
            Ok(product) => found.push(VariantOnSale {
                variant_id: id,
                product_id: id,
                product_name: product.row.name,
                sku: None,
                options: BTreeMap::new(),
                unit_price: product.row.price,
                available: product.row.stock,
                on_sale: true,
            }),
            Err(CatalogError::ProductNotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// The order line for `quantity` of a variant.
pub fn order_line(variant_id: i64, quantity: i32) -> ecom_orders::RequestedLine {
    ecom_orders::RequestedLine {
        product_id: variant_id,
        quantity: i64::from(quantity),
    }
}

/// The variant an order line is for.
pub fn ordered_variant(line: &ecom_orders::OrderLine) -> i64 {
    line.product_id
}
