use ecom_auth::AuthError;
use ecom_auth::service::resolver::AccountResolver;
use ecom_auth::service::roles::{self, UserFilter};
use ecom_core::Permission;
use ecom_core::principal::PrincipalResolver;
use ecom_testkit::fixtures::page_of;
use ecom_testkit::{TestDb, db_and_app};

use crate::{auth_context, full_admin, signed_up};

#[actix_web::test]
async fn roles_change_and_apply_through_the_resolver() {
    let (db, app) = db_and_app(auth_context).await;
    let (admin, _) = signed_up!(app, "pat@example.com");
    let (user, _) = signed_up!(app, "quin@example.com");
    let resolver = AccountResolver;
    let mut conn = db.connect().await;

    let account = resolver
        .resolve(&mut conn, user, 0)
        .await
        .expect("resolve")
        .expect("exists");
    assert_eq!(account.role, "user");
    assert!(account.permissions.is_empty());

    roles::put_role(
        &mut conn,
        &full_admin(0),
        "analyst",
        &["view:reports".to_string()],
    )
    .await
    .expect("create role");
    let (before, after) = roles::change_role(&mut conn, &full_admin(admin), user, "analyst")
        .await
        .expect("change");
    assert_eq!(
        (before.role.as_str(), after.role.as_str()),
        ("user", "analyst")
    );
    let account = resolver
        .resolve(&mut conn, user, 0)
        .await
        .expect("resolve")
        .expect("exists");
    assert_eq!(
        account.permissions.into_iter().collect::<Vec<_>>(),
        vec![Permission::ViewReports]
    );

    // Editing the role's permissions applies to its holders at once.
    roles::put_role(
        &mut conn,
        &full_admin(0),
        "analyst",
        &["view:reports".into(), "manage:orders".into()],
    )
    .await
    .expect("replace");
    let account = resolver
        .resolve(&mut conn, user, 0)
        .await
        .expect("resolve")
        .expect("exists");
    assert!(account.has_all(&[Permission::ViewReports, Permission::ManageOrders]));

    assert!(matches!(
        roles::change_role(&mut conn, &full_admin(admin), user, "wizard").await,
        Err(AuthError::UnknownRole(_))
    ));
    assert!(matches!(
        roles::change_role(&mut conn, &full_admin(admin), admin, "user").await,
        Err(AuthError::CannotModifySelf)
    ));
    assert!(matches!(
        roles::put_role(&mut conn, &full_admin(0), "analyst", &["fly:planes".into()]).await,
        Err(AuthError::UnknownPermission(_))
    ));
    assert!(
        resolver
            .resolve(&mut conn, 987654, 0)
            .await
            .expect("resolve")
            .is_none()
    );
}

#[actix_web::test]
async fn admin_keeps_every_permission() {
    let (_db, mut conn) = TestDb::connected().await;
    // A principal with every permission, in another role than the one it edits.
    let owner = crate::actor(0, "owner", Permission::ALL);
    let (_, after) = roles::put_role(&mut conn, &owner, "admin", &[])
        .await
        .expect("put");
    assert_eq!(after.permissions.len(), Permission::ALL.len());
    let listed = roles::list_roles(&mut conn).await.expect("list");
    let admin = listed
        .iter()
        .find(|r| r.name == "admin")
        .expect("admin role");
    assert_eq!(admin.permissions.len(), Permission::ALL.len());
    let user = listed.iter().find(|r| r.name == "user").expect("user role");
    assert!(user.permissions.is_empty());
}

#[actix_web::test]
async fn users_list_filters_and_counts() {
    let (db, app) = db_and_app(auth_context).await;
    let (admin, _) = signed_up!(app, "rita@example.com");
    let (sam, _) = signed_up!(app, "sam@shop.example");
    let (tom, _) = signed_up!(app, "tom@shop.example");
    let mut conn = db.connect().await;
    roles::set_active(&mut conn, &full_admin(admin), sam, false)
        .await
        .expect("ban");
    let searching = |text: &str| UserFilter {
        search: Some(text.into()),
        ..Default::default()
    };
    let banned = UserFilter {
        is_active: Some(false),
        ..Default::default()
    };
    let (all, first) = (UserFilter::default(), page_of(10, 0));
    // (what, filter, page, rows on the page, total, the first row's id)
    let cases = [
        ("newest first", all.clone(), first, 3, 3, Some(tom)),
        ("search", searching("SHOP.example"), first, 2, 2, None),
        ("banned", banned, first, 1, 1, Some(sam)),
        ("% literally", searching("%"), first, 0, 0, None),
        ("second page", all, page_of(2, 2), 1, 3, None),
    ];
    for (what, filter, page, rows, total, first_id) in cases {
        let (items, count) = roles::list_users(&mut conn, &filter, page)
            .await
            .expect(what);
        assert_eq!((items.len(), count), (rows, total), "{what}");
        if let Some(id) = first_id {
            assert_eq!(items[0].id, id, "{what}");
        }
    }
}
