//! The fixed world notigen's instances live in: flavors, images, user role sets and names,
//! modelled on the Rackspace Nova traffic StackTach's notigen templates were captured from.
//!
//! Everything here is `static` and every JSON fragment is built (and escaped) at compile time,
//! so rendering a notification never rebuilds them.

use crate::json::Lit;

/// A Nova flavor (instance type).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Flavor {
    /// `instance_type_id`: the flavor's database id.
    pub id: u64,
    /// `instance_flavor_id`: the public flavor id (`"2"`, `"performance1-4"`).
    pub flavorid: &'static str,
    /// `instance_type`: the display name.
    pub name: &'static str,
    pub memory_mb: u64,
    pub vcpus: u64,
    pub root_gb: u64,
    pub ephemeral_gb: u64,
    pub swap: u64,
    /// Network bandwidth factor as Nova prints it (`"80.0"`).
    pub rxtx_factor: &'static str,
    pub vcpu_weight: u64,
}

impl Flavor {
    /// `disk_gb` in Nova's payloads: root plus ephemeral disk.
    pub(crate) fn disk_gb(&self) -> u64 {
        self.root_gb + self.ephemeral_gb
    }
}

macro_rules! flavor {
    ($id:literal, $flavorid:literal, $name:literal, $mem:literal, $vcpus:literal, $root:literal,
     $eph:literal, $swap:literal, $rxtx:literal, $weight:literal) => {
        Flavor {
            id: $id,
            flavorid: $flavorid,
            name: $name,
            memory_mb: $mem,
            vcpus: $vcpus,
            root_gb: $root,
            ephemeral_gb: $eph,
            swap: $swap,
            rxtx_factor: $rxtx,
            vcpu_weight: $weight,
        }
    };
}

/// Flavors, smallest first; resizes move between them.
pub(crate) static FLAVORS: [Flavor; 10] = [
    flavor!(
        2,
        "2",
        "512MB Standard Instance",
        512,
        1,
        20,
        0,
        512,
        "80.0",
        10
    ),
    flavor!(
        3,
        "3",
        "1GB Standard Instance",
        1024,
        1,
        40,
        0,
        1024,
        "120.0",
        10
    ),
    flavor!(
        4,
        "4",
        "2GB Standard Instance",
        2048,
        2,
        80,
        0,
        2048,
        "240.0",
        10
    ),
    flavor!(
        5,
        "5",
        "4GB Standard Instance",
        4096,
        2,
        160,
        0,
        2048,
        "400.0",
        10
    ),
    flavor!(
        6,
        "6",
        "8GB Standard Instance",
        8192,
        4,
        320,
        0,
        2048,
        "600.0",
        14
    ),
    flavor!(
        7,
        "7",
        "15GB Standard Instance",
        15360,
        6,
        620,
        0,
        2048,
        "800.0",
        20
    ),
    flavor!(
        9,
        "performance1-1",
        "1 GB Performance",
        1024,
        1,
        20,
        0,
        0,
        "200.0",
        10
    ),
    flavor!(
        10,
        "performance1-2",
        "2 GB Performance",
        2048,
        2,
        40,
        20,
        0,
        "400.0",
        10
    ),
    flavor!(
        11,
        "performance1-4",
        "4 GB Performance",
        4096,
        4,
        40,
        40,
        0,
        "800.0",
        10
    ),
    flavor!(
        12,
        "performance1-8",
        "8 GB Performance",
        8192,
        8,
        40,
        80,
        0,
        "1600.0",
        10
    ),
];

/// How often each flavor is chosen for a new instance (small ones are popular).
pub(crate) static FLAVOR_WEIGHTS: [f64; 10] =
    [14.0, 18.0, 12.0, 7.0, 4.0, 2.0, 16.0, 14.0, 9.0, 4.0];

/// A Glance image instances boot from.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Image {
    /// Glance image id.
    pub uuid: &'static str,
    /// Display name (`image_name` in `compute.instance.create.*`).
    pub name: &'static str,
    pub os_type: &'static str,
    /// `org.openstack__1__os_distro` (reverse domain name).
    pub distro: &'static str,
    /// `org.openstack__1__os_version`.
    pub version: &'static str,
    pub min_disk: &'static str,
    pub min_ram: &'static str,
    /// The payload's `image_meta` object, rendered at compile time.
    pub meta_json: Lit,
    /// Glance's `properties` object as the scheduler's `request_spec.image` shows it.
    pub properties_json: Lit,
    /// Image size in bytes.
    pub size: u64,
}

macro_rules! image {
    ($uuid:literal, $name:literal, $os_type:literal, $distro:literal, $version:literal,
     $short:literal, $min_disk:literal, $min_ram:literal, $size:literal) => {
        Image {
            uuid: $uuid,
            name: $name,
            os_type: $os_type,
            distro: $distro,
            version: $version,
            min_disk: $min_disk,
            min_ram: $min_ram,
            meta_json: crate::json::lit!(concat!(
                "{\"auto_disk_config\":\"True\",\"base_image_ref\":\"",
                $uuid,
                "\",\"cache_in_nova\":\"True\",\"container_format\":\"ovf\",",
                "\"disk_format\":\"vhd\",\"image_type\":\"base\",\"min_disk\":\"",
                $min_disk,
                "\",\"min_ram\":\"",
                $min_ram,
                "\",\"org.openstack__1__architecture\":\"x64\",",
                "\"org.openstack__1__os_distro\":\"",
                $distro,
                "\",\"org.openstack__1__os_version\":\"",
                $version,
                "\",\"os_distro\":\"",
                $short,
                "\",\"os_type\":\"",
                $os_type,
                "\"}"
            )),
            properties_json: crate::json::lit!(concat!(
                "{\"auto_disk_config\":\"True\",\"cache_in_nova\":\"True\",",
                "\"image_type\":\"base\",\"org.openstack__1__architecture\":\"x64\",",
                "\"org.openstack__1__os_distro\":\"",
                $distro,
                "\",\"org.openstack__1__os_version\":\"",
                $version,
                "\",\"os_distro\":\"",
                $short,
                "\",\"os_type\":\"",
                $os_type,
                "\"}"
            )),
            size: $size,
        }
    };
}

/// Public base images.
pub(crate) static IMAGES: [Image; 8] = [
    image!(
        "2cbd0ea1-5e3b-4b4e-9a8c-7d3e1f0b6a21",
        "Ubuntu 14.04 LTS (Trusty Tahr) (PVHVM)",
        "linux",
        "com.ubuntu",
        "14.04",
        "ubuntu",
        "20",
        "512",
        1_040_187_392
    ),
    image!(
        "6dd9de7b-8e1a-4cc7-bcc3-b28706028b3e",
        "Ubuntu 12.04 LTS (Precise Pangolin)",
        "linux",
        "com.ubuntu",
        "12.04",
        "ubuntu",
        "20",
        "512",
        912_261_120
    ),
    image!(
        "9e429bae-05af-428e-93c4-de5210c3d47a",
        "CentOS 6.5 (PVHVM)",
        "linux",
        "org.centos",
        "6.5",
        "centos",
        "20",
        "512",
        1_288_490_188
    ),
    image!(
        "e455ec57-d25b-4798-ab03-009a2523754f",
        "CentOS 7 (PVHVM)",
        "linux",
        "org.centos",
        "7",
        "centos",
        "20",
        "512",
        1_395_864_371
    ),
    image!(
        "83faac57-2f56-4652-866d-e486522c4f8d",
        "Red Hat Enterprise Linux 6.5",
        "linux",
        "com.redhat",
        "6.5",
        "rhel",
        "40",
        "512",
        1_610_612_736
    ),
    image!(
        "609be487-53c5-4f2e-9a5a-c9cda0ed044c",
        "Debian 7 (Wheezy) (PVHVM)",
        "linux",
        "org.debian",
        "7",
        "debian",
        "20",
        "512",
        838_860_800
    ),
    image!(
        "9ccc5c2c-ee51-4889-b114-2a82f39ccfb8",
        "Fedora 20 (Heisenbug) (PVHVM)",
        "linux",
        "org.fedoraproject",
        "20",
        "fedora",
        "20",
        "512",
        1_073_741_824
    ),
    image!(
        "c1f4a1b0-7d9b-4d52-8f26-2f6ab6f0c0d3",
        "Windows Server 2012 R2",
        "windows",
        "com.microsoft.server",
        "2012.1",
        "windows",
        "40",
        "2048",
        9_663_676_416
    ),
];

/// How often each image is chosen (Ubuntu and CentOS dominate).
pub(crate) static IMAGE_WEIGHTS: [f64; 8] = [22.0, 10.0, 14.0, 16.0, 8.0, 8.0, 4.0, 8.0];

/// `_context_roles` arrays users carry, pre-rendered.
pub(crate) static ROLE_SETS: [&str; 4] = [
    r#"["identity:user-admin","object-store:default","compute:default"]"#,
    r#"["compute:default","object-store:default"]"#,
    r#"["identity:user-admin","object-store:default","compute:default","checkmate"]"#,
    r#"["_member_"]"#,
];

/// Roles of the admin context Nova's periodic usage audit runs under.
pub(crate) static ADMIN_ROLES: &str = r#"["admin"]"#;

/// Prefixes of instance display names (`web-0412`).
pub(crate) static NAME_PREFIXES: [&str; 12] = [
    "web", "app", "db", "worker", "cache", "build", "ci", "api", "lb", "mq", "search", "etl",
];

/// First two octets of the public IPv4 ranges instances get addresses from.
pub(crate) static PUBLIC_V4_PREFIXES: [[u8; 2]; 4] = [[23, 253], [104, 130], [162, 242], [166, 78]];

/// Glance API servers (`image_ref_url`).
pub(crate) static GLANCE_SERVERS: [&str; 3] = ["10.23.200.11", "10.23.200.12", "10.23.200.13"];

/// Images a rescue boots from (`rescue_image_name`).
pub(crate) static RESCUE_IMAGE: &str = "Rescue Image (Linux)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_fragments_are_valid_json_with_the_dotted_keys() {
        for image in &IMAGES {
            let meta: serde_json::Value = serde_json::from_str(image.meta_json.bare).unwrap();
            assert_eq!(meta["org.openstack__1__os_distro"], image.distro);
            assert_eq!(meta["org.openstack__1__os_version"], image.version);
            assert_eq!(meta["org.openstack__1__architecture"], "x64");
            assert_eq!(meta["base_image_ref"], image.uuid);
            let props: serde_json::Value =
                serde_json::from_str(image.properties_json.bare).unwrap();
            assert_eq!(props["os_type"], image.os_type);
        }
        for roles in ROLE_SETS.iter().chain([&ADMIN_ROLES]) {
            assert!(serde_json::from_str::<Vec<String>>(roles).is_ok());
        }
    }

    #[test]
    fn flavor_table_is_consistent() {
        assert_eq!(FLAVORS.len(), FLAVOR_WEIGHTS.len());
        assert_eq!(IMAGES.len(), IMAGE_WEIGHTS.len());
        let mut ids: Vec<u64> = FLAVORS.iter().map(|f| f.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), FLAVORS.len());
        assert_eq!(FLAVORS[7].disk_gb(), 60);
    }
}
