//! Known-answer vectors for the start-up probe: one key per algorithm and size, and a
//! signature of [`MESSAGE`] made with the private half (generated once with Python
//! `cryptography`, then the private keys were discarded). Base64url, no padding.

/// The signed message.
pub(super) const MESSAGE: &[u8] = b"verdict crypto_mb start-up probe";

/// An RSA key (e = 65537) with an RS256 and a PS256 signature of [`MESSAGE`].
pub(super) struct RsaProbe {
    pub(super) bits: u32,
    pub(super) n: &'static str,
    pub(super) rs256: &'static str,
    pub(super) ps256: &'static str,
}

/// An EC key with an ES256, ES384 or ES512 signature (JOSE `r || s`) of [`MESSAGE`].
pub(super) struct EcProbe {
    pub(super) x: &'static str,
    pub(super) y: &'static str,
    pub(super) sig: &'static str,
}

/// RSA-2048, RSA-3072 and RSA-4096.
pub(super) const RSA: [RsaProbe; 3] = [
    RsaProbe {
        bits: 2048,
        n: "lBf8UIAHjws1A07Rt7J13kWKnrO8YBrNo9LRJC3evpN7I7VYwvCHvUYLvMxlZSy4y8SDaBP5h7fP0WNPGsS6KCkK6mCbKqPlFTGrg9CJNFQ7zjvyf7z5ls9xzhwGd8XPdix6uFsxdmd08jk4HuCCEWexu5FtG6x-f4x8JIMdDeQgyv0x9guHPzkd2UtPcC6xzO-0XIiOvwYWAh6o1FGyTHs41CEjhl91C4XzH5_gQAdB0h-WPLgCdooDnyEjiUTzuNrOlHjm9Mcps6oY1l5q6hIO2gRxsmJL94rrXXmlnhkX70XPQVp5ucmEr5a_PDmclSWENaW2MHtU0AVOGNWXNw",
        rs256: "H_sgwU0p9BWj_JNpDGNcR-laCsIjMJT_XyTewCAWIJNsMj1bUP7-BFDzzNhTDl8zz4l3SXWupf4mxHKqEH6g8C3rifI04tVCQn4wFEcZUp0dkS9H_oX2dERh7xQuywTcEyfvtO_gNIuVHcq8TDXuGNDjKKcO1yWRSudHXvgPhiUlcXM_iM_hyvc84CfXgdSOWWo4O11cCI2WQ5C0bWXInReQFCpFvWtHcbMgTREqM7RTqyq8J1Epc07TdA1C6oNzb5_2pf78dXNhxRKgVRzHJNNsXrDHQ2K8f2QZP1RuC5MIyjWi6l8ud0iEuphwZfChXeRBOVzKbiF7cKRYA_ap6A",
        ps256: "g8D7snY3ZBN9iVsIbfxtFEwKf0FGIBlVletCsjZKydqSYcmd3uKHXoppFA_nyhHWUXe07M8cFesNQ7Lva0zWczt4vRpj6-TeHTZ3ArsbyVh3gbmYmXRh1FmEJZ6ttfjMZkEfeh4_5UzgU1mJYgy-_mQin9NRzZFaBRd5aPPTDuR4URYCsC-JVgLSkOE9nvBESkzWhKggHSqXfYgb7fRR74z06uxg3nAKxLy4FH1brQB9oKhwFLiY_GRkkWN-a7wVEchzvrI_ryLWrSlUu5LKZYHKQhqKsytsE54L-vYdX9y5QlDfFAOXjp3V-Gk3NQZWVsQyAYf30OjBNPcqA0UMTQ",
    },
    RsaProbe {
        bits: 3072,
        n: "pbPX0zUC9yNFRAJe92X0xFvsO0hbTYEPVq_WbTmPd2l__N86d4HDoIqG_gdfacFlrjqBhjj5Bep-9RHrxWrBAMDmc-VW1qUwvBIGlcB6PqNRT91Kj_FnlQatrpHiCuettNDrmX-1aJR5oIUz7HxgBLay9vacYJkGFugxsQTlgkJgPkB1brdUuosVgEO5DXprk3MWOeZMWeJhcThzypgHozNPvqY__7iFLxKqqT4bSWVXqxqOwXeeFIRaPSJti3uqv7aVw24ZO7fok-E1Y0cZrUpwjrp1jgi20P7_gi9udUDZwekfxUh8Oj0V07M5GAYEui-zZtCqb7_7d4e_zACRFiCq9478N_VR2xpaZzqMAjXiLuSTQoGw2s09lGL1Gt4esO5BImGWU-HM13MT_vIWDRPyY9ZGQbrTnGVZQy145zXXu5bcPFTQBCBGF2-0mu1QKJcVkcn4IWWLuDWwb-LsrJT3Qvs7--O0DsQA1MFnC5-rEu-dFlNMbwo6N41dKVs1",
        rs256: "NhGQ7fFL9YGCSpdFwmXi6ttdh8LNjEL3lnXJRyLPfmN8BSIG2qVzx0eEMkDG88qt9XmX4HhAMJsyw_Wnhjc8K1Oe7POdruV9xGRuJY-mLMT6_lFXEBOaPNhoHi18wQ0hX_N4aDy25axXmsGQUlLthUgTiK18_S_nZW9Bi11yyiLCrHGikmuWzqzX-0cDh1L2QYBqJ9aresXFHqgME8VUQuPa9V7PHqukoSmz5yU-U-dMFHdpfAo4dc8LfoNM0XQWvLsSH-uQaAKR3l-WI2BbJOsEOzjHBjQwc7AFBsM0Cm5H95JkvcVZUaUm2JmFy-ZlWs5rycwZ1J30P6TRoHwRiIW4Skc2GcqarvOHGLsJ47yawC3YkrtxNwC1dTRQVvkA4H5ephvXz46V1H13nb7HR-VLJKu9vmV7-Rm-mkHrGo1vR39_WIlrJo1dfWzxWUtWSmEvZ8Psp9hF0lKasqCUATTvRyzLp5AJS9g2o7SByjg9u0wMX-mGfsziPMJvuhjN",
        ps256: "bjDEXRx7upGczbukRSMfG8KECOdvpdvCwqTtkXQvWcoTavOSlFcbAjr8T0gMgZTkRBFB_gde-22nSgDEgniVD1C1XqLbbCNT2n21dPPcpf8pFAgf5TdroiM-HnTGK9QvuTbbEDlfXyyFMmZqIDxvzWzcTdGgNLRlmMRPkzqvfRYtoL3uKJGZ9dL9wbwMSlJbVu6Ci8bhJkfVtrziVQWE5vxi15PigFL3cSOdRgVKiQZwZj5aqP574jttUi3w31kZfLsh7GERDU6UBATsnd-zZg0NVBhih_8CKG8OpY5-0_TcLgip4BQz20aF4g1Xj-4tEkTqE9RukZkkqj7JvqSc3j8BM2oi75TAUMz31qqTnT87B4xqH_C9W1RdkNyOL9REMjo4zWLyxHz8o2uO3m94FG-Ql8lznccPexaxSSVJZgdGaSPO5SH0lteOG59GI6DR3PXn6OF-Fi0v_Wrg5pWXV83xCmalt-4wD65ceV8IOQTqRlDIm0S8q0c8w_mgpPpG",
    },
    RsaProbe {
        bits: 4096,
        n: "w20hWazWvCWWvlTEYpqpIi2WYedq6t53m-4ZajTX80TaIezd_mYJjdxoxKEesB-Q-EzTbQ45TzODMw_1dGSOP58c9IKFoieoeF1ga-i8L3k5VRqAgR0y_merYmrUUDHkeF2hssdikpF6S9QvYcj8BqeqiwpxXxhrq92PtumjOVGjgMT1c8Ier13BOB1T0GW7fPi48fndw8qj6Pyr-m6NhJ6Ru-wLtQ9NmJWHegYy-zo0wCXgPuvhiXRxeemqvXwHNrd_PRWcSxSeFwieW-lsWWdfD923wInUdxhTn40SbkhBvfdubZoXL3etLmWRXazHoq7ufUNWauMKXdnzEPctLxr7kIiWIWl_aKE7afKRvlSi2_AryTexUOmw7G8DPsXFtS6kFAsCyRQKBFoX3vTX3tj1beUaNz9qEO0AQ9Igc-0sDQRK-kYA-0gvwnCMyfPu9RcxVdi__JgRiWL04109av1rBO9okQNFrkCbAcN2RTBxaFuU4rHRQugV0mg8Rin9AIVLpkSdApMduXuJEUxnwSTr5ZxV5LCly_imdgZCikbxk6PBAWqN8QtM2K_cpy5oWDRRmDttt5g2BnQ8NRBAUn9snfARG59qEmdCQtXXAQ5St1GK_btvFhjJa9sAVXYDnsZZ3WGPTkidPMU7u5qE_vahmWid-DyL_-XJom24zzE",
        rs256: "mCLdPirwbs1oHFR6DRlvukaE91lGCUmbyyhYPakUUa2BqLLhmVRkHh8wDSCWTAmULK2Q7J-62eVpsPA8lsB3ftIb4PKhC-T_hTFeEv0SJWQ1OkhNsHcd4DXFgFFpBxSJVGbcZ_WFrePfzARLa10CRR5b9XmcppuNKGT09TPvfY57qv4XoEijY1RiKjg962qad9L9ET6rouTMCmqIkor_ufXEArZp_aBCoMv6LDPh9dxNkZm-qkPoXaJjsK6jbPxNnLqlY1noGxHy3vXosJRtcV8EZ8SJG5oMRdzNHITElEJqAKhLlrq7T2pqDBnURUObMipcZNpMifurrZeTjBZNgDr0EmkFF2tZsYNwYZTPnhj926EIqhu204I0ulgv_BLd-zMjAmhIbzXI5FaZeWEaeFs8mY-frL-J3gIQbk1isbRe75ZP3tnlQGVdwTIDE-EH24Xnfulp96cX6GaHAZwsdaFS6WaZfy4yxHc5E6HHc-KIC4_huL7ZysU4uKMON3wiD1GCdNrKj-lqaYjWz3mGa0snLM_PgZTHvQVpDBl80k5LKWdK3Mm3NFS9x88pYFMBQgBy38nEjKYnsHdqB7KeDLoCpHFBfwlEmvche4K99TTPcKL65NS5V9HnOfGxJ5Q2p5HZ-26SXutHWINNbxOWsn97bppa_AA-KTSWpunSWxY",
        ps256: "emo5fNIqfhp1Wv1dL0bsUEc9-DdUkkEEupg_Psj-9J_n-XMoXL46kFQOgZZ_BIiN9Vbmijy-JZfJ4rsaTxe0zHitQZvOhaErFG5itnYBRudAeVFm9FVcUdBTue2Na4rsYVCIrZRaiY6ijvIRr3jDvbV5y97Q-dnZQk4lyRFnAqK4sibFWq8yJOSPVfjEShl4cbLIRA1ivAbr8TGbazZ7JB9iS2bsHqVJKqjJDN6l_-WpsYsyWFrrXEJCYCaRUSDbXKx1Crv2mncTJSuIFge9AbY4V0P-4m5zEzz7AxdzO3X9aQKLx9fWBlsmhAZKFncDII6NdfqslPsTMqesDga6jvabFrf7ZntSZBq2kD8iaUYlArDzto7c2GCLqtbq8QopMvWVRJeCMa1T3gO66UFC2VtmYio2h_ErMg1GAL_wAia9iHQ9-CrBw5-kdNeJoQMlCcqAbh729DnWwpVRhjrdu-UhA-VbtMaAIcL2QuSehwGMoGXoscWU9TMt8_WKtwQTQ_lyaBaJizhPBhOkjOFssPjNQYeanWhfjZfjcIobBwkdlWATMRNABcyJjAwzzAbaQKBowhT9SxG1iOz_e1BXZQOTh63EWBEdg0Ciy_o0t801EOavd6cWh71xCIK4GvKvC2xm1mD4PW-RCC5OdmvgVy2iaao9P1Tm33e71sRrHjI",
    },
];

/// ES256 on P-256.
pub(super) const P256: EcProbe = EcProbe {
    x: "bNfWDnrq2Nguuz4VtWoxAgTJ2a108zk8MInBYf-xtRc",
    y: "JYW56UZczSyFPMao1uTAJBFWDerXUO5D5pZ4DBlZzO0",
    sig: "fjS0DvOKHNCF8uB0JXMNEsX17DacLdG6P0nPfmQNu54pvZ7rn71Dgjcsc9u-cZhm0Xc8aGZAMTpdYp27qbjVGg",
};

/// ES384 on P-384.
pub(super) const P384: EcProbe = EcProbe {
    x: "7ZYI8r_WBBlciiuILn2ZOv-iuLqM0y1TPEEyYSpVctNebHd7JE7Q2T7hRrqRL1Xm",
    y: "PqfQBC8zWB81rVA6oaGkpVvEdUKfaY2QyGGpGYitI9_DlHb86HDBE4wFSEyCMp8r",
    sig: "LfphewjgzmCF5UvIn3mUHXXDHOgp7yi6M0hWySYdILOPD1Vbi-t9I3bP9IXYy0TKsB_HL-KFjsa3EvGSXtGC-WwxDJZpmTswLqdtky799GwXoR5UMY6I7jsIsuRJBvYE",
};

/// ES512 on P-521.
pub(super) const P521: EcProbe = EcProbe {
    x: "AYJFaIKrOvj1vp1AByZj782j-Su3coLAG7aHeDTMrlKgl-bzWw-Fy6RfzIIYllWYV3jIg3rsSI_SzLu7WbLTEZPs",
    y: "AR_Fg8ftyxElZjIFnzmHtU7kB8fcIxnsbjcq8u3IsyBD5jbLuje5T2y1wYL1seMe34qDZ2Rr6prhYeNsuSysZ-PO",
    sig: "ACQsJ4chLquNY71JVvlOSdjOnlKNYZYZXqltochbJ21ePpTMPJ5GWknbitL6cTJHwxfFD3C65Z3XPdUscjlB6ZU9\
          ARNTGZ-Dz7zVBTTmV2D37BzIZRp2RN26WzgFCNZh2hAjPFzVfxzHh7UDEnQ-acTVmusrVDvFoLh_KTmUHM7e6mh8",
};

/// Ed25519: the public key and a signature of [`MESSAGE`].
pub(super) const ED25519_KEY: &str = "Wa5WxZPyS1Al6ufqCDPlsNLtITEXgGQZmL1ZwcVOg9o";
pub(super) const ED25519_SIG: &str =
    "3PL-yaxBmb9joCxs4zpIADimzsqL5dfhOtQpISgLpwvQ3HqSaO2FIuYRauRRA2w_oCmR2CkNKUU5IUsE6LXVDg";
